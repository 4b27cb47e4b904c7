//! The integration tests, one crate (one build, one link) for all of them: each module drives the
//! real `ocitool` binary and the real tools (sops, age, kubectl, kubeconform, promtool) through
//! [`support`]. Run one area with `cargo test --test integration consolidate::`.

mod support;

mod alerts;
mod cli;
mod consolidate;
mod consumers;
mod conventions;
mod deploy_reflector;
mod docs;
mod e2e;
mod layouts;
mod opencenter;
mod output_schema;
mod property7;
mod reflector_manifests;
mod rotate;
mod trustworthy_writes;
mod validate;
