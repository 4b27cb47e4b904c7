//! ocitool's orchestration: one run against one repository ([`workspace`]), what the repository
//! holds ([`repo`]), and the workflows' plans: consolidation and rotation steps, static
//! validation ([`validate`]), Reflector deployment ([`deploy`]) and live verification
//! ([`cluster`]).
//!
//! This layer composes the pure core with the adapters. It stages changes but never applies them
//! (the host decides), never prints (it returns reports and findings), and knows nothing of Rhai.

pub mod cluster;
pub mod deploy;
pub mod flux_builds;
pub mod flux_sources;
pub mod login;
pub mod others;
pub mod prerequisites;
pub mod repo;
pub mod sops_rules;
pub mod target;
pub mod validate;
pub mod workspace;
