//! ocitool's adapters: every conversation with the world outside the process.
//!
//! External programs (`sops`, `kubectl`, `kustomize` builds) are found by [`tools`] and run by the one
//! subprocess runner, [`process`]; the repository on disk is read and changed only through [`changeset`], which
//! stages changes and applies them atomically; registries are asked whether a credential logs in
//! by [`registry`]. Adapters translate between the outside world and
//! the core's types; they never decide what to change (that is `ocitool-orchestration`) and never
//! let a plaintext credential reach the disk or an error message.

pub mod changeset;
pub mod flux;
pub mod kubectl;
pub mod kustomize;
pub mod password;
pub mod process;
pub mod registry;
pub mod sops;
pub mod tools;
