//! ocitool: consolidate, rotate and verify the OCI registry credentials of a Flux/SOPS/Kustomize fleet.
//!
//! The library does all the work; the binary is a thin host that runs versioned Rhai workflows
//! (`scripts/*.rhai`) against it. Each module owns one domain concept and says in its own header
//! what it must never do. The cross-cutting rule: plaintext credentials live only in memory, inside
//! [`creds::Credentials`], and leave the process only through `sops` standard input.

pub mod changeset;
pub mod cli;
pub mod cluster;
pub mod creds;
pub mod fleetgen;
pub mod kubectl;
pub mod kustomize;
pub mod manifest;
pub mod progress;
pub mod redact;
pub mod reflector;
pub mod repo;
pub mod script;
pub mod secret;
pub mod sops;
pub mod tools;
pub mod validate;
pub mod workspace;
