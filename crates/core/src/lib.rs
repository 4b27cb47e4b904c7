//! ocitool's pure core: the credential model, Kubernetes Secret manifests, Reflector's rules and
//! the Flux manifests that deploy it, and the format-preserving kustomization editor.
//!
//! Everything here is a function of its inputs: this crate never starts a process, never touches
//! the filesystem or the network, and never prints. That is what makes it testable in isolation
//! and what the layers above rely on: `ocitool-adapters` does the I/O, `ocitool-orchestration`
//! composes both into plans. The cross-cutting rule starts here: plaintext credentials live only
//! inside [`creds::Credentials`] and every value decoded is registered with [`redact`].

pub mod consumers;
pub mod creds;
pub mod kustomize;
pub mod manifest;
pub mod redact;
pub mod reflector;
pub mod repo_path;
pub mod secret;
pub mod sops_config;
pub mod sops_format;
