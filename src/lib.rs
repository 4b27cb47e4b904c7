//! ocitool's host: the `ocitool` command line ([`cli`]) and the Rhai engine that runs versioned
//! workflow scripts ([`script`]) against the library layers below.
//!
//! Layers, each a crate (`crates/`): `ocitool-core` (pure domain) ← `ocitool-adapters`
//! (processes, filesystem) ← `ocitool-orchestration` (workspaces and plans) ← this host. The host
//! is glue: it parses arguments, exposes library functions to scripts, prints through
//! [`progress`], and is the only place staged changes are applied. The cross-cutting rule:
//! plaintext credentials live only in memory, inside `ocitool_core::creds::Credentials`, and leave
//! the process only through `sops` standard input. See docs/architecture.md.

pub mod cli;
pub mod progress;
pub mod script;
pub mod term;
