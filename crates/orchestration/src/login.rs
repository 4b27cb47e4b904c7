//! Does a credential actually log in? One registry login check per registry of a [`Credentials`],
//! run in parallel, reported by registry, username and fingerprint.
//!
//! The handshake itself (OCI distribution `GET /v2/`, Basic or Bearer token auth) is the
//! [`ocitool_adapters::registry`] adapter's; this module decides which registries to ask and turns
//! the answers into a verdict a workflow can act on. It never returns or prints a password: the
//! only place one is read is the call that hands it to the adapter.

use crate::validate::{Finding, Severity};
use ocitool_adapters::registry::{self, LoginOptions, LoginResult, LoginStatus};
use ocitool_core::creds::Credentials;
use rayon::prelude::*;
use std::fmt;

/// What a registry said about one credential.
#[derive(Debug, Clone)]
pub struct LoginCheck {
    pub registry: String,
    pub username: String,
    pub fingerprint: String,
    pub result: LoginResult,
}

/// The verdict a workflow acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The credential was exercised and accepted.
    LogsIn,
    /// The registry asks for no credential, so this one could not be checked.
    NotChecked,
    /// The registry (or its token service) refused the credential.
    Rejected,
    /// No usable answer: unreachable, unsupported or unexpected.
    Unknown,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::LogsIn => "logs-in",
            Verdict::NotChecked => "not-checked",
            Verdict::Rejected => "rejected",
            Verdict::Unknown => "unknown",
        }
    }
}

impl LoginCheck {
    pub fn verdict(&self) -> Verdict {
        match self.result.status {
            LoginStatus::LoggedIn => Verdict::LogsIn,
            LoginStatus::NotRequired => Verdict::NotChecked,
            LoginStatus::Rejected { .. } => Verdict::Rejected,
            _ => Verdict::Unknown,
        }
    }
}

impl LoginCheck {
    /// This check as a validation finding on `file` (the source it came from): a rejected
    /// credential is an error (Flux would fail to pull), an unanswered check a warning.
    pub fn finding(&self, file: &str) -> Finding {
        let (severity, advice) = match self.verdict() {
            Verdict::LogsIn => (Severity::Info, ""),
            Verdict::NotChecked => (Severity::Info, ""),
            Verdict::Rejected => (
                Severity::Error,
                "; the credential is expired, revoked or wrong: rotate it (ocitool run rotate)",
            ),
            Verdict::Unknown => (Severity::Warning, "; could not be checked from here"),
        };
        Finding {
            severity,
            file: file.to_string(),
            message: format!("login: {self}{advice}"),
        }
    }
}

impl fmt::Display for LoginCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} as {} ({}): {}",
            self.registry, self.username, self.fingerprint, self.result
        )
    }
}

/// Ask every registry of `credentials` (or only `only`, when given) whether its credential logs in.
pub fn check(
    credentials: &Credentials,
    only: Option<&str>,
    options: &LoginOptions,
) -> Vec<LoginCheck> {
    let registries: Vec<String> = credentials
        .registries()
        .into_iter()
        .filter(|r| only.is_none_or(|o| o == r))
        .collect();
    registries
        .par_iter()
        .filter_map(|registry_key| {
            let auth = credentials.get(registry_key)?;
            let result = registry::verify_login(
                registry_key,
                auth.username(),
                auth.expose_password(),
                options,
            );
            Some(LoginCheck {
                registry: registry_key.clone(),
                username: auth.username().to_string(),
                fingerprint: auth.fingerprint(),
                result,
            })
        })
        .collect()
}
